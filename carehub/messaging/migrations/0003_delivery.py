# Replaces the development message log (nothing was ever sent from it) with delivery rows.

import carehub.messaging.models
import datetime
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('messaging', '0002_initial'),
        ('clinics', '0002_clinicthreshold'),
        ('pathways', '0002_step_append_only'),
        ('patients', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.DeleteModel(name='Message'),
        migrations.CreateModel(
            name='RecordedMessage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('channel', models.CharField(max_length=16)),
                ('to', models.CharField(max_length=254)),
                ('subject', models.CharField(blank=True, max_length=300)),
                ('body', models.TextField()),
                ('idempotency_key', models.CharField(max_length=400, unique=True)),
                ('provider_id', models.CharField(default=carehub.messaging.models.new_provider_id, max_length=64, unique=True)),
                ('at', models.DateTimeField()),
                ('duplicate_requests', models.PositiveIntegerField(default=0, help_text='Later requests with the same key (accepted, not delivered again)')),
            ],
            options={
                'verbose_name': 'sent message (development backends)',
                'verbose_name_plural': 'sent messages (development backends)',
                'ordering': ['-at'],
            },
        ),
        migrations.CreateModel(
            name='ContactPreference',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('opted_out', models.BooleanField(default=False, help_text='No messages at all')),
                ('opted_out_sms', models.BooleanField(default=False)),
                ('opted_out_email', models.BooleanField(default=False)),
                ('opted_out_in_app', models.BooleanField(default=False)),
                ('daily_budget', models.PositiveSmallIntegerField(default=carehub.messaging.models.default_daily_budget, help_text='At most this many routine messages a (local) day')),
                ('patient', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='contact_preference', to='patients.patient')),
            ],
            options={
                'abstract': False,
            },
        ),
        migrations.CreateModel(
            name='Message',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('purpose', models.CharField(max_length=32)),
                ('urgency', models.CharField(choices=[('routine', 'Routine'), ('urgent', 'Urgent')], default='routine', max_length=16)),
                ('body', models.TextField(help_text='The text, or a template a renderer completes at send time')),
                ('subject_key', models.CharField(blank=True, help_text='What it is about, e.g. checkin:123 or task:45', max_length=100)),
                ('idempotency_key', models.CharField(max_length=400, unique=True)),
                ('why', models.CharField(help_text='Why this message was decided', max_length=500)),
                ('channel', models.CharField(blank=True, choices=[('sms', 'SMS'), ('email', 'E-mail'), ('in_app', 'In-app')], help_text='Chosen at send time', max_length=16)),
                ('status', models.CharField(choices=[('pending', 'Pending (waiting for its time)'), ('queued', 'Queued (published to a worker)'), ('sending', 'Sending (a worker holds it)'), ('sent', 'Sent'), ('deferred', 'Deferred (quiet hours)'), ('suppressed', 'Suppressed (no longer needed)'), ('opted_out', 'Not sent: opted out'), ('over_budget', 'Not sent: over the daily budget'), ('held_for_digest', 'Held for the daily digest'), ('retry', 'Waiting to retry'), ('dead', 'Dead (gave up)')], default='pending', max_length=16)),
                ('attempts', models.PositiveSmallIntegerField(default=0)),
                ('not_before', models.DateTimeField(help_text='Not sent before this time (UTC)')),
                ('claimed_at', models.DateTimeField(blank=True, help_text='When it was queued, or taken by a worker (the lease)', null=True)),
                ('sent_at', models.DateTimeField(blank=True, null=True)),
                ('provider_message_id', models.CharField(blank=True, max_length=200)),
                ('last_error', models.TextField(blank=True)),
                ('clinic', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='clinics.clinic')),
                ('digest', models.ForeignKey(blank=True, help_text='The daily digest that carries this held message', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='digested', to='messaging.message')),
                ('patient', models.ForeignKey(blank=True, help_text='The patient the message is about (empty only for a staff digest)', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='messages', to='patients.patient')),
                ('source_effect', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='pathways.outboxeffect')),
                ('to_staff', models.ForeignKey(blank=True, help_text='Empty: the message is for the patient', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
        ),
        migrations.CreateModel(
            name='InAppNotification',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('body', models.TextField()),
                ('read_at', models.DateTimeField(blank=True, null=True)),
                ('patient', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='patients.patient')),
                ('staff', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='in_app_notifications', to=settings.AUTH_USER_MODEL)),
                ('message', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='in_app', to='messaging.message')),
            ],
        ),
        migrations.CreateModel(
            name='DeliveryEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('at', models.DateTimeField()),
                ('status', models.CharField(choices=[('pending', 'Pending (waiting for its time)'), ('queued', 'Queued (published to a worker)'), ('sending', 'Sending (a worker holds it)'), ('sent', 'Sent'), ('deferred', 'Deferred (quiet hours)'), ('suppressed', 'Suppressed (no longer needed)'), ('opted_out', 'Not sent: opted out'), ('over_budget', 'Not sent: over the daily budget'), ('held_for_digest', 'Held for the daily digest'), ('retry', 'Waiting to retry'), ('dead', 'Dead (gave up)')], max_length=16)),
                ('reason', models.CharField(max_length=1000)),
                ('attempt', models.PositiveSmallIntegerField(default=0)),
                ('message', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='events', to='messaging.message')),
                ('related_message', models.ForeignKey(blank=True, help_text='e.g. the digest that carried it', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='messaging.message')),
            ],
            options={
                'ordering': ['pk'],
            },
        ),
        migrations.CreateModel(
            name='StaffNotificationPreference',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('daily_digest', models.BooleanField(default=False, help_text='Routine messages wait for one daily digest (urgent ones never)')),
                ('digest_hour', models.TimeField(default=datetime.time(8, 0), help_text="Local time of the digest, in the clinic's time zone")),
                ('channel', models.CharField(choices=[('in_app', 'In-app'), ('email', 'E-mail')], default='in_app', max_length=16)),
                ('staff', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='notification_preference', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'abstract': False,
            },
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(condition=models.Q(('status__in', ['pending', 'deferred', 'retry'])), fields=['not_before'], name='message_due'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(condition=models.Q(('status__in', ['queued', 'sending'])), fields=['claimed_at'], name='message_in_flight'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(condition=models.Q(('status', 'sent'), ('to_staff__isnull', True)), fields=['patient', 'sent_at'], name='message_sent_to_patient'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(condition=models.Q(('status', 'held_for_digest')), fields=['to_staff', 'created_at'], name='message_held_for_digest'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(fields=['purpose', 'subject_key'], name='message_subject'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(condition=models.Q(('status', 'dead')), fields=['created_at'], name='message_dead'),
        ),
        migrations.AddConstraint(
            model_name='message',
            constraint=models.CheckConstraint(condition=models.Q(('patient__isnull', False), ('to_staff__isnull', False), _connector='OR'), name='message_patient_or_staff'),
        ),
        migrations.AddConstraint(
            model_name='inappnotification',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('patient__isnull', True), ('staff__isnull', False)), models.Q(('patient__isnull', False), ('staff__isnull', True)), _connector='OR'), name='in_app_one_recipient'),
        ),
        migrations.AddIndex(
            model_name='deliveryevent',
            index=models.Index(fields=['message', 'at'], name='messaging_d_message_4d9590_idx'),
        ),
    ]
