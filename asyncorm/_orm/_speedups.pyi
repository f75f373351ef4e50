from typing import Any

class Hydrator:
    def __init__(
        self,
        cls: type,
        state_type: type,
        collected: Any,
        names: tuple[str, ...],
        positions: tuple[int, ...],
        key_position: int,
    ) -> None: ...
    def load_in_place(self, rows: list[Any], states: dict[Any, Any], session: Any, /) -> None: ...
    def attach_state(self, obj: Any, /) -> Any: ...

def forget_session(states: dict[Any, Any], /) -> None: ...
def object_collected(state: Any, /) -> None: ...
