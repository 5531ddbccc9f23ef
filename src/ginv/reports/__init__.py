"""The report: every table and figure of a reproduction, with its settings, as Markdown and HTML."""

from ginv.reports.report import write_report

__all__ = ["write_report"]
