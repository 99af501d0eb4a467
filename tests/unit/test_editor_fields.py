"""The editor's field buttons (typed callback data) name exactly the fields its forms ask for."""

from __future__ import annotations

from typing import get_args

from handlers.telegram.admin.category_form import CategoryForm
from handlers.telegram.admin.product_form import ProductForm
from handlers.telegram.ui.callbacks import EDITOR_FIELDS


def test_every_field_a_form_asks_for_has_a_button_value_and_no_button_names_a_field_no_form_has() -> None:
    asked = set(ProductForm.steps_all) | set(CategoryForm.steps_all)
    assert asked == set(get_args(EDITOR_FIELDS))
