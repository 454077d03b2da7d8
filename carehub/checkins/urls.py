from django.urls import path

from carehub.checkins.views import checkin_link_view

app_name = "checkins"
urlpatterns = [path("c/<str:token>", checkin_link_view, name="link")]
