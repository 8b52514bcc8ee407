"""A distributed worker's calls to its chief, with a deadline: a worker whose chief went away
stops with a clear error instead of waiting.

KerasTuner's ``OracleClient`` sends every call with ``wait_for_ready=True`` and a one-hour
deadline (keras-team/keras-tuner pull request #957 and issue #990: the chief may take long to
start), so a worker whose chief died waits an hour per call and then fails with a gRPC
traceback (pull request #645 met workers waiting for ever). :func:`guard_chief_calls` keeps
that patience for the first call only; once the chief has answered, each later call gets
``timeout`` seconds, and a chief that does not answer in time raises :class:`ChiefNotAnswering`.

References:
    keras-team/keras-tuner issue #915, pull requests #645 and #957, issue #990.
"""

from __future__ import annotations

import os

import grpc
import keras_tuner

__all__ = ["ChiefNotAnswering", "guard_chief_calls"]

_GIVE_UP = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class ChiefNotAnswering(keras_tuner.errors.FatalError):
    """The chief of a distributed search stopped answering (a ``FatalError``: KerasTuner's
    search loop lets it through instead of failing the trial)."""


class _GuardedStub:
    """Forwards calls to a gRPC stub, with a deadline once the chief has answered."""

    def __init__(self, stub, address: str, timeout: float | None) -> None:
        self._stub = stub
        self._address = address
        self._timeout = timeout
        self._answered = False

    def __getattr__(self, name: str):
        call = getattr(self._stub, name)

        def guarded(request, **kwargs):
            if self._answered and self._timeout is not None:
                kwargs["timeout"] = min(kwargs.get("timeout") or self._timeout, self._timeout)
            try:
                response = call(request, **kwargs)
            except grpc.RpcError as error:
                if error.code() not in _GIVE_UP:
                    raise
                waited = kwargs.get("timeout")
                raise ChiefNotAnswering(
                    f"the chief at {self._address} is not answering ({name}: "
                    f"{error.code().name}"
                    + (f" after {waited:g} s" if waited is not None else "")
                    + "): it has stopped, crashed or cannot be reached"
                ) from None
            self._answered = True
            return response

        return guarded


def guard_chief_calls(client, timeout: float | None) -> None:
    """Gives a KerasTuner ``OracleClient``'s calls a deadline once the chief has answered.

    Args:
        client: the ``keras_tuner`` ``OracleClient`` of a worker (``tuner.oracle``).
        timeout: seconds each call may wait for the chief after its first answer. `None`
            keeps KerasTuner's deadline (an hour), still turned into :class:`ChiefNotAnswering`.
    """
    address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    client.stub = _GuardedStub(client.stub, address, timeout)
