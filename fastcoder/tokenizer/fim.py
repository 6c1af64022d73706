"""Fill-in-the-middle: which tokens mark prefix/suffix/middle, and the prompt layout."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True, slots=True)
class FimTokens:
    prefix_id: int
    suffix_id: int
    middle_id: int
    pad_id: int | None = None          # ends generation when the model emits it
    repo_id: int | None = None         # <|repo_name|>: repository-level prompts
    file_sep_id: int | None = None     # <|file_sep|>: repository-level prompts

    @classmethod
    def from_roles(cls, role_to_id: Mapping[str, int]) -> "FimTokens | None":
        """None unless prefix, suffix and middle are all present."""
        if not {"fim_pre", "fim_suf", "fim_mid"} <= role_to_id.keys():
            return None
        return cls(prefix_id=role_to_id["fim_pre"], suffix_id=role_to_id["fim_suf"],
                   middle_id=role_to_id["fim_mid"], pad_id=role_to_id.get("fim_pad"),
                   repo_id=role_to_id.get("fim_rep"), file_sep_id=role_to_id.get("fim_sep"))

    def layout(self, prefix_ids: list[int], suffix_ids: list[int]) -> list[int]:
        """Prefix-suffix-middle order, as Qwen2.5-Coder, StarCoder and CodeLlama were trained:
        <PRE> prefix <SUF> suffix <MID>; the model then writes the middle."""
        return [self.prefix_id, *prefix_ids, self.suffix_id, *suffix_ids, self.middle_id]
