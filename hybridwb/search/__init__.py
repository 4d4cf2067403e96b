"""Search over mapped tables with index-friendly predicates and keyset paging."""

from hybridwb.search.service import SearchResult, SearchService

__all__ = ["SearchResult", "SearchService"]
