"""The results export: a Celery task that writes its progress to the export row."""

from __future__ import annotations

from celery import shared_task

from webapp.workshops import services
from webapp.workshops.models import ResultsExport


def export_execute(*, export_id: int) -> int:
    export = ResultsExport.objects.select_related("workshop").get(pk=export_id)
    try:
        workshop = export.workshop
        participants = services.results_rows(workshop)
        export.status = ResultsExport.Status.RUNNING
        export.total = len(participants)
        export.save(update_fields=["status", "total"])
        written: list[list[str]] = []
        for row in participants:
            written.append(row)
            if len(written) % 25 == 0:
                ResultsExport.objects.filter(pk=export_id).update(done=len(written))
        export.csv = services.csv_text(services.results_header(workshop), written)
        export.done = len(written)
        export.status = ResultsExport.Status.DONE
        export.save(update_fields=["csv", "done", "status"])
    except Exception as error:
        ResultsExport.objects.filter(pk=export_id).update(
            status=ResultsExport.Status.FAILED, error=f"{type(error).__name__}: {error}"
        )
        raise
    return export.done


@shared_task(name="workshops.export_results")
def export_results(export_id: int) -> int:
    """Build the CSV of a workshop's results (one row per participant)."""
    return export_execute(export_id=export_id)
