from django.urls import path

from carehub.portal import views

app_name = "portal"
urlpatterns = [
    path("", views.home_view, name="home"),
    path("progress/", views.progress_view, name="progress"),
    path("next/", views.what_next_view, name="what_next"),
    path("checkins/<int:checkin_id>/", views.checkin_view, name="checkin"),
    path("logout/", views.logout_view, name="logout"),
]
