from django.db import migrations

# Audit events are evidence: the application may add to the trail, never change or remove it.
# Reuses carehub_refuse_change() from pathways 0002. (TRUNCATE stays possible for operators and
# for the test database's flush.)
APPEND_ONLY = """
CREATE TRIGGER audit_auditevent_append_only
    BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION carehub_refuse_change();
"""

REVERSE = """
DROP TRIGGER IF EXISTS audit_auditevent_append_only ON audit_auditevent;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
        ("pathways", "0002_step_append_only"),
    ]

    operations = [migrations.RunSQL(APPEND_ONLY, REVERSE)]
