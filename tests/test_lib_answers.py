import json

import pytest

from llm_lib import answers

GOOD = {
    "clarity": 72,
    "summary": "Clear need.",
    "strengths": ["budget"],
    "risks": [],
    "next_action": "Call.",
}


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(GOOD),
        "```json\n%s\n```" % json.dumps(GOOD),
        "Here you go: %s Thanks!" % json.dumps(GOOD),
        "```\n%s\n```" % json.dumps(GOOD),
    ],
)
def test_accepted_shapes(text):
    assert answers.parse_analysis(text)["clarity"] == 72.0


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("<html><body>502</body></html>", "no JSON"),
        (json.dumps(dict(GOOD, clarity=101)), "not between"),
        (json.dumps(dict(GOOD, clarity="high")), "not a number"),
        (json.dumps(dict(GOOD, clarity=True)), "not a number"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "risks"}), "misses: risks"),
        (json.dumps(dict(GOOD, strengths="budget")), "not a list"),
        (json.dumps(dict(GOOD, summary="  ")), "summary is empty"),
        ('{"clarity": 80, "summary": "cut', "no JSON"),
    ],
)
def test_unusable(text, message):
    with pytest.raises(answers.UnusableAnswer, match=message):
        answers.parse_analysis(text)


def test_provider_bodies():
    openai = {
        "choices": [{"message": {"content": "x"}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2},
    }
    assert answers.parse_provider_body("openai", openai) == ("x", 1, 2)
    anthropic = {
        "content": [{"type": "text", "text": "y"}],
        "usage": {"input_tokens": 3, "output_tokens": 4},
    }
    assert answers.parse_provider_body("anthropic", anthropic) == ("y", 3, 4)
    for body in ({}, {"choices": []}, {"choices": [{"message": {"content": ""}}]}, []):
        with pytest.raises(answers.UnusableAnswer):
            answers.parse_provider_body("openai", body)
