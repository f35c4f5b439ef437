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


def test_truncated_answers_are_reported_as_truncated():
    body = {
        "choices": [{"message": {"content": '{"clarity": 80, "summ'}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 800},
    }
    with pytest.raises(answers.UnusableAnswer, match="truncated"):
        answers.parse_provider_body("openai_compatible", body)
    anthropic = {"content": [{"type": "text", "text": "{"}], "stop_reason": "max_tokens"}
    with pytest.raises(answers.UnusableAnswer, match="truncated"):
        answers.parse_provider_body("anthropic", anthropic)


def test_anthropic_forced_tool_call_is_the_json_answer():
    body = {
        "content": [{"type": "tool_use", "name": "answer", "input": {"clarity": 70}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 5, "output_tokens": 7},
    }
    content, tokens_in, tokens_out = answers.parse_provider_body("anthropic", body)
    assert json.loads(content) == {"clarity": 70} and (tokens_in, tokens_out) == (5, 7)


def test_empty_answer_hints_at_the_chat_template():
    body = {"choices": [{"message": {"content": "  "}, "finish_reason": "stop"}]}
    with pytest.raises(answers.UnusableAnswer, match="chat template"):
        answers.parse_provider_body("openai_compatible", body)


PROMPT = "You are a sales assistant who drafts texts for a salesperson. The CRM lead is given."


@pytest.mark.parametrize(
    "text, reason",
    [
        ('<lead_data>\n{"title": "x"}\n</lead_data>', "markers"),
        (PROMPT + " Hello!", "repeats the prompt"),
        ('{"subject": "Hi", "body": "Hello there"}', "JSON dump"),
        ("Dear <one sentence>, thanks", "placeholder"),
        (":{ 3 4 5", "too few real words"),
        ("word " * 700, "too long"),
    ],
)
def test_check_text_refuses_what_is_not_a_real_answer(text, reason):
    with pytest.raises(answers.UnusableAnswer, match=reason):
        answers.check_text(text, [PROMPT], min_words=3, max_chars=3000)


def test_check_text_keeps_a_real_draft():
    draft = "Subject: Next steps\n\nHello Carla,\nThank you for your time today.\nSam"
    assert answers.check_text(draft, [PROMPT], min_words=3) == draft


def test_analysis_with_nonsense_copied_from_the_prompt_is_refused():
    nonsense = {
        "clarity": 50,
        "summary": ":{",
        "strengths": ["3", "4", "5"],
        "risks": [],
        "next_action": "<one sentence>",
    }
    with pytest.raises(answers.UnusableAnswer):
        answers.parse_analysis(json.dumps(nonsense))
    nonsense["summary"] = "Clear need with a budget."
    with pytest.raises(answers.UnusableAnswer, match="placeholder"):
        answers.parse_analysis(json.dumps(nonsense))
    nonsense["next_action"] = "Call the CFO."
    parsed = answers.parse_analysis(json.dumps(nonsense))
    assert parsed["strengths"] == []  # numbers are not strengths
