"""Table mappings: the model, schema discovery and analysis, suggestions and drift."""

from hybridwb.mapping.model import FieldMapping, MappingFile, Relation, TableMapping, parse
from hybridwb.mapping.service import MappingService

__all__ = ["FieldMapping", "MappingFile", "MappingService", "Relation", "TableMapping", "parse"]
