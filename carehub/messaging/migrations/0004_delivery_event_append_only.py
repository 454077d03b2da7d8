from django.db import migrations

# The delivery log answers "why was this sent, or not sent?": rows are added, never changed or
# removed. (TRUNCATE stays possible for operators and the test database's flush.)
APPEND_ONLY = """
CREATE TRIGGER messaging_deliveryevent_append_only
    BEFORE UPDATE OR DELETE ON messaging_deliveryevent
    FOR EACH ROW EXECUTE FUNCTION carehub_refuse_change();
"""

REVERSE = """
DROP TRIGGER IF EXISTS messaging_deliveryevent_append_only ON messaging_deliveryevent;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0003_delivery"),
        ("pathways", "0002_step_append_only"),  # carehub_refuse_change()
    ]

    operations = [migrations.RunSQL(APPEND_ONLY, REVERSE)]
