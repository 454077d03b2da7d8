from django.urls import path

from carehub.messaging.views import sent_messages_view

app_name = "messaging"
urlpatterns = [path("sent-messages/", sent_messages_view, name="sent_messages")]
