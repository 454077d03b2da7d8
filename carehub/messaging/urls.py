from django.urls import path

from carehub.messaging.views import open_checkin_view, sent_messages_view

app_name = "messaging"
urlpatterns = [
    path("sent-messages/", sent_messages_view, name="sent_messages"),
    path("sent-messages/<int:recorded_id>/open", open_checkin_view, name="open_checkin"),
]
