from .cases import CaseTable, read_case, read_case_table

__all__ = ["CaseTable", "read_case", "read_case_table"]
