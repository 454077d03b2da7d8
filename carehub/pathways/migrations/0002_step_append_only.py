from django.db import migrations

# The transition log is evidence: the application may add to it, never change or remove it.
# (TRUNCATE stays possible for operators and for the test database's flush.)
APPEND_ONLY = """
CREATE OR REPLACE FUNCTION carehub_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER pathways_pathwaystep_append_only
    BEFORE UPDATE OR DELETE ON pathways_pathwaystep
    FOR EACH ROW EXECUTE FUNCTION carehub_refuse_change();
"""

REVERSE = """
DROP TRIGGER IF EXISTS pathways_pathwaystep_append_only ON pathways_pathwaystep;
"""


class Migration(migrations.Migration):
    dependencies = [("pathways", "0001_initial")]

    operations = [migrations.RunSQL(APPEND_ONLY, REVERSE)]
