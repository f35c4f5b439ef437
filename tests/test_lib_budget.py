import threading

from llm_lib import budget

MESSAGES = {budget.REQUESTS: "rpm", budget.TOKENS: "tokens", budget.COST: "cost"}


def request(chars=400, max_tokens=100, price_in=0.0, price_out=0.0):
    return {
        "payload": {"messages": [{"content": "x" * chars}], "max_tokens": max_tokens},
        "price_input": price_in,
        "price_output": price_out,
    }


def test_no_limits_never_refuse():
    gate = budget.Budget({}, {}, MESSAGES)
    for _i in range(100):
        assert gate.acquire(request()) is None


def test_the_call_at_the_request_cap_is_refused():
    gate = budget.Budget({budget.REQUESTS: 3}, {budget.REQUESTS: 1}, MESSAGES)
    assert gate.acquire(request()) is None
    assert gate.acquire(request()) is None
    assert gate.acquire(request()) == "rpm"
    assert gate.refused == {budget.REQUESTS}


def test_tokens_count_what_a_call_may_spend_then_what_it_spent():
    # estimate: 400 chars / 4 + 100 max tokens = 200
    gate = budget.Budget({budget.TOKENS: 450}, {budget.TOKENS: 100}, MESSAGES)
    assert gate.acquire(request()) is None  # 100 + 200 <= 450
    assert gate.acquire(request()) == "tokens"  # 300 + 200 > 450 while the first is in flight
    gate.release(request(), 50, 10)  # it really used 60
    assert gate.used[budget.TOKENS] == 160
    assert gate.acquire(request()) is None
    assert gate.ratios()[budget.TOKENS] == 360 / 450


def test_cost_cap_from_prices_per_million():
    req = request(price_in=2.0, price_out=8.0)
    gate = budget.Budget({budget.COST: 0.01}, {}, MESSAGES)
    assert gate.acquire(req) is None
    gate.release(req, 1000, 1000)  # 0.002 + 0.008
    assert abs(gate.used[budget.COST] - 0.01) < 1e-12
    assert gate.acquire(req) == "cost"


def test_concurrent_callers_never_pass_the_request_cap():
    gate = budget.Budget({budget.REQUESTS: 25}, {}, MESSAGES)
    granted = []

    def worker():
        for _i in range(20):
            if gate.acquire(request()) is None:
                granted.append(1)

    threads = [threading.Thread(target=worker) for _i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 25
