"""The Bot API's file methods: sendDocument and sendPhoto (an upload, its caption and keyboard, held in
``files``) and getFile (within the Bot API's download limit; the bytes are served by ``server``)."""

from __future__ import annotations

import secrets
from typing import Any

from sandbox.telegram.errors import bad
from sandbox.telegram.html import formatted
from sandbox.telegram.limits import DOWNLOAD_MAX_BYTES, check_caption, check_file, check_markup, photo_entries
from sandbox.telegram.state import EmulatorState, is_private


class FileMethods(EmulatorState):
    async def _send_file(self, p: dict[str, Any], kind: str, method: str) -> dict[str, Any]:
        chat_id, chat = self._target(p)
        upload = p.get(kind)
        if not isinstance(upload, tuple):
            raise bad(f"there is no {kind} in the request")
        name, data = upload
        if not data:
            raise bad("file must be non-empty")
        dims = check_file(kind, data)  # size (413 over 50 MB), and a photo's own rules
        shown, entities = formatted(str(p.get("caption") or ""), p.get("parse_mode"))
        check_caption(shown)
        markup = p.get("reply_markup")
        markup_kind = check_markup(markup, private=is_private(chat))
        self._flood(chat_id)
        file_id = f"{kind[:3].upper()}{secrets.token_hex(10)}"
        self.files[file_id] = (name, data)
        meta = {"file_id": file_id, "file_unique_id": file_id[3:15], "file_size": len(data)}
        sizes = photo_entries(file_id, len(data), dims) if kind == "photo" else []
        self.files.update({size["file_id"]: (name, data) for size in sizes})
        content = {"document": {**meta, "file_name": name}} if kind == "document" else {"photo": sizes}
        msg = self._bot_message(chat_id, chat, caption=shown or None, caption_entities=entities, **content)
        keyboard = self._apply_markup(chat_id, msg, markup, markup_kind)
        return await self._notify(self._record(chat_id, method, msg, keyboard))

    async def m_senddocument(self, p: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file(p, "document", "sendDocument")

    async def m_sendphoto(self, p: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file(p, "photo", "sendPhoto")

    def m_getfile(self, p: dict[str, Any]) -> dict[str, Any]:
        file_id = str(p.get("file_id") or "")
        if file_id not in self.files:
            raise bad("invalid file_id")
        _, data = self.files[file_id]
        if len(data) > DOWNLOAD_MAX_BYTES:
            raise bad("file is too big")
        return {
            "file_id": file_id,
            "file_unique_id": file_id[3:15],
            "file_size": len(data),
            "file_path": f"documents/{file_id}",
        }
