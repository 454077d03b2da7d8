"""A pathway step refreshes only the fact it can change.

Every transition appends a step; until now its trigger recomputed the patient's whole caseload
entry from `web_caseload_source` (flags, proposals, check-ins, enrolments: about 3 ms, a tenth
of a persisted transition). A step can change one fact only, `last_progress_at`, the latest
'started' or 'transitioned' step of an active enrolment, and only forward. The trigger now
moves that column forward, locking the entries in patient order as the full refresh does;
enrolment status changes keep their full refresh (their trigger), so a paused or discharged
enrolment's steps still drop out of the fact. The caseload tests compare the entries with the
view after every door, transitions included.
"""

from django.db import migrations

FAST_PATH = """
CREATE OR REPLACE FUNCTION web_caseload_touch_pathways_pathwaystep() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM web_caseloadentry w
    WHERE w.patient_id IN (SELECT e.patient_id FROM new_rows n
                             JOIN pathways_enrolment e ON e.id = n.enrolment_id
                            WHERE n.outcome IN ('started', 'transitioned')
                              AND e.status = 'active')
    ORDER BY w.patient_id FOR UPDATE;
  UPDATE web_caseloadentry w
     SET last_progress_at = moved.at
    FROM (SELECT e.patient_id, max(n.at) AS at
            FROM new_rows n
            JOIN pathways_enrolment e ON e.id = n.enrolment_id
           WHERE n.outcome IN ('started', 'transitioned') AND e.status = 'active'
           GROUP BY e.patient_id) moved
   WHERE w.patient_id = moved.patient_id
     AND (w.last_progress_at IS NULL OR w.last_progress_at < moved.at);
  RETURN NULL;
END $$;
"""

# The function 0003 created: the full refresh of each patient the new steps moved.
FULL_REFRESH = """
CREATE OR REPLACE FUNCTION web_caseload_touch_pathways_pathwaystep() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  ids bigint[];
BEGIN
  ids := ARRAY(SELECT e.patient_id FROM new_rows n
                 JOIN pathways_enrolment e ON e.id = n.enrolment_id
                WHERE n.outcome IN ('started', 'transitioned'));
  IF cardinality(ids) > 0 THEN
    PERFORM web_caseload_refresh(ids);
  END IF;
  RETURN NULL;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("web", "0003_caseload_entry")]

    operations = [migrations.RunSQL(FAST_PATH, FULL_REFRESH)]
