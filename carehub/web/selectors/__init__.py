"""Reads for the staff web UI, always through the scoped querysets of `carehub.care_access`.

One module per purpose:

- `caseload`: the caseload's filters, sort, counts and keyset-paginated page;
- `row_details`: what the caseload's rows show, in one hand-written statement;
- `formatting`: the words and links of the caseload's rows, event titles;
- `patient`: one patient and the patient page's record;
- `worklists`: the flag inbox, the task worklists and undelivered messages;
- `workspace`: the therapists' workspace.
"""
