"""fastcoder: a fast local engine for code models from GGUF files."""
from fastcoder.sampling_params import SamplingParams

__all__ = ["LLM", "SamplingParams"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # LLM pulls in torch; import it lazily so `fastcoder list`/`pull` start instantly.
    if name == "LLM":
        from fastcoder.engine.llm import LLM
        return LLM
    raise AttributeError(name)
