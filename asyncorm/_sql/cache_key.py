"""Structural cache keys: the shape of a statement with its bound values left out.

Every element implements ``_gen_cache_key(anon_map, binds)``: it returns a hashable key and
appends each ``BindParameter`` it holds to ``binds``, in a traversal order that depends only
on the statement's shape. Two statements with equal keys compile to the same SQL, and their
``binds`` lists line up position by position; that is how a ``Compiled`` made from one
statement binds the values of another.

``anon_map`` numbers the anonymous and derived FROM objects (subqueries, unnamed aliases) in
order of first appearance: the first reference contributes the object's full key, later ones
only its number, so a subquery's binds are collected exactly once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .elements import BindParameter

__all__ = ["AnonMap", "CacheKeyResult", "MemoizedCacheKey"]

AnonMap = dict[int, int]
CacheKeyResult = tuple[Any, tuple["BindParameter[Any]", ...]]


class MemoizedCacheKey:
    """Mixin for statements: ``_generate_cache_key()`` computed once per (immutable) object.

    Generative methods copy ``__dict__`` without ``_memoized_cache_key`` (see
    ``Generative._generate``), so a modified copy computes its own key.
    """

    _memoized_cache_key: CacheKeyResult

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        raise NotImplementedError

    def _generate_cache_key(self) -> CacheKeyResult:
        """``(key, binds)``: the structural key and the bound parameters in traversal order."""
        try:
            return self._memoized_cache_key
        except AttributeError:
            binds: list[BindParameter[Any]] = []
            key = self._gen_cache_key({}, binds)
            result = (key, tuple(binds))
            self._memoized_cache_key = result
            return result
