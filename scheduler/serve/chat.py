"""Chat messages -> one prompt: the checkpoint's own chat template (tokenizer_config.json's `chat_template`,
rendered with jinja2 in a sandbox as transformers does), else plait's plain template:

    <|system|>
    You are terse.
    <|user|>
    Hi!
    <|assistant|>

(one `<|role|>` line and the message per message, then `<|assistant|>` and a newline for the answer).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plait.sdk.errors import PlaitError

PLAIN_TEMPLATE = ("{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}\n{% endfor %}"
                  "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")


class ChatTemplateError(ValueError):
    """The template refused the messages (its raise_exception), or failed on them."""


def _token_text(value: Any) -> str:
    """A special token as tokenizer_config.json writes it: a string, or {"content": ...}."""
    if isinstance(value, dict):
        return str(value.get("content", ""))
    return "" if value is None else str(value)


@dataclass(frozen=True)
class ChatTemplate:
    text: str
    source: str            # where it came from, said at startup
    bos_token: str = ""
    eos_token: str = ""

    @classmethod
    def load(cls, folder: str | Path | None) -> ChatTemplate:
        """The checkpoint's template when its tokenizer_config.json has one, else the plain template."""
        config_file = None if folder is None else Path(folder) / "tokenizer_config.json"
        if config_file is None or not config_file.is_file():
            return cls(PLAIN_TEMPLATE, "plait's plain template (no tokenizer_config.json)")
        try:
            config = json.loads(config_file.read_text())
        except ValueError as err:
            raise PlaitError(f"{config_file} is not JSON: {err}\n  To fix: repair or remove it.") from None
        template = config.get("chat_template")
        if isinstance(template, list):   # named templates: [{"name": "default", "template": ...}, ...]
            named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
            template = named.get("default") or next(iter(named.values()), None)
        if not isinstance(template, str) or not template.strip():
            return cls(PLAIN_TEMPLATE, f"plait's plain template ({config_file.name} has no chat_template)")
        return cls(template, f"the chat_template of {config_file}", _token_text(config.get("bos_token")),
                   _token_text(config.get("eos_token")))

    def render(self, messages: list[dict[str, Any]]) -> str:
        from jinja2 import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str) -> None:
            raise ChatTemplateError(message)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = raise_exception
        try:
            return env.from_string(self.text).render(messages=messages, add_generation_prompt=True,
                                                     bos_token=self.bos_token, eos_token=self.eos_token)
        except TemplateError as err:
            raise ChatTemplateError(f"the chat template failed on these messages: {err}") from None
