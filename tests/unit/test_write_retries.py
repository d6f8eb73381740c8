"""Throttled and conflicting writes are retried as the API server asks; others are not."""

import pytest
from kubernetes.client.exceptions import ApiException

from aifactory_operator.kube.retries import MAX_ATTEMPTS, retrying, wait_before_retry


def refusal(status: int, retry_after: str | None = None) -> ApiException:
    error = ApiException(status=status, reason="test")
    error.headers = {"Retry-After": retry_after} if retry_after else {}
    return error


def test_throttling_waits_as_long_as_retry_after_says():
    assert wait_before_retry(refusal(429, "3"), 1) == 3.0


def test_throttling_without_retry_after_backs_off_exponentially():
    assert [wait_before_retry(refusal(429), a) for a in (1, 2, 3)] == [0.5, 1.0, 2.0]


def test_conflicts_are_retried_briefly_and_other_errors_not_at_all():
    assert 0 < wait_before_retry(refusal(409), 1) <= 0.2
    assert wait_before_retry(refusal(422), 1) is None
    assert wait_before_retry(refusal(429, "1"), MAX_ATTEMPTS) is None


def test_a_write_throttled_twice_succeeds_on_the_third_try_after_the_waits_asked():
    answers = [refusal(429, "2"), refusal(409), "written"]
    waits: list[float] = []

    def write():
        answer = answers.pop(0)
        if isinstance(answer, ApiException):
            raise answer
        return answer

    assert retrying(write, sleep=waits.append) == "written"
    assert waits[0] == 2.0 and len(waits) == 2


def test_a_write_refused_for_good_raises_at_once():
    waits: list[float] = []

    def write():
        raise refusal(403)

    with pytest.raises(ApiException):
        retrying(write, sleep=waits.append)
    assert waits == []
