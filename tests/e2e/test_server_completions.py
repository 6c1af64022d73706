"""Text completions on a live server: fill-in-the-middle, token prompts, echo, batches, and greedy
outputs unchanged by concurrency."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.e2e.expected import NO_EOS, greedy


def test_completion_suffix_is_fill_in_the_middle(client, reference):
    prefix, suffix = "def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n"
    fim_ids = reference.tokenizer.build_fim_prompt(prefix, suffix)
    reply = client.completions.create(model="tiny", prompt=prefix, suffix=suffix, max_tokens=4,
                                      temperature=0, echo=True, extra_body=NO_EOS)
    assert reply.usage.prompt_tokens == len(fim_ids)
    echoed = reference.tokenizer.decode(fim_ids)
    assert echoed.startswith("<|fim_prefix|>def add") and "<|fim_middle|>" in echoed
    assert reply.choices[0].text == echoed + greedy(reference, fim_ids, 4, ignore_eos=True).text


def test_token_prompt_echo_and_logprobs(client, reference):
    ids = reference.tokenizer.encode("the cat")
    reply = client.completions.create(model="tiny", prompt=ids, max_tokens=3, temperature=0,
                                      echo=True, logprobs=2, extra_body=NO_EOS)
    expected = greedy(reference, ids, 3, ignore_eos=True)
    assert reply.choices[0].text == "the cat" + expected.text
    assert reply.usage.prompt_tokens == len(ids)
    logprobs = reply.choices[0].logprobs
    assert len(logprobs.token_logprobs) == 3 and all(len(t) <= 2 for t in logprobs.top_logprobs)
    assert logprobs.tokens == [reference.tokenizer.decode([t]) for t in expected.token_ids]

def test_batch_of_prompts(client, reference):
    prompts = ["the cat", "hello there"]
    reply = client.completions.create(model="tiny", prompt=prompts, max_tokens=4, temperature=0,
                                      extra_body=NO_EOS)
    encoded = [reference.tokenizer.encode(p) for p in prompts]
    assert [c.text for c in reply.choices] == [greedy(reference, ids, 4, ignore_eos=True).text
                                               for ids in encoded]
    assert reply.usage.prompt_tokens == sum(map(len, encoded))


def test_greedy_same_alone_and_among_eight(client, reference):
    prompts = [f"request {i}: the quick brown fox" for i in range(8)]

    def complete(prompt):
        return client.completions.create(model="tiny", prompt=prompt, max_tokens=24,
                                         temperature=0, extra_body=NO_EOS).choices[0].text
    alone = [complete(p) for p in prompts]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(complete, prompts))
    assert together == alone
    assert alone == [greedy(reference, reference.tokenizer.encode(p), 24, ignore_eos=True).text
                     for p in prompts]
