from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.authtoken.views import obtain_auth_token

from config.health import healthz
from crm import api as crm_api
from crm import views as crm_views
from dashboard import views as dashboard_views
from feed import api as feed_api
from feed import views as feed_views
from integrations import api as integrations_api
from integrations.amazon_ses import views as amazon_ses_views
from integrations.email import views as email_views
from integrations.mailgun import views as mailgun_views
from integrations.meetings import api as meetings_api
from integrations.postmark import views as postmark_views
from integrations.sendgrid import views as sendgrid_views
from notifications import api as notifications_api
from notifications import views as notifications_views
from privacy import api as privacy_api
from realtime import api as realtime_api
from support import views as support_views

api_v1 = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("realtime/ticket/", realtime_api.TicketView.as_view(), name="api-realtime-ticket"),
    path("accounts/", crm_api.AccountListView.as_view(), name="api-accounts"),
    path("accounts/<int:account_id>/", crm_api.AccountChangeView.as_view(), name="api-account"),
    path(
        "opportunities/<int:opportunity_id>/",
        crm_api.OpportunityView.as_view(),
        name="api-opportunity",
    ),
    path(
        "accounts/<int:account_id>/activities/",
        feed_api.AccountActivitiesView.as_view(),
        name="api-account-activities",
    ),
    path(
        "accounts/<int:account_id>/logging-address/",
        integrations_api.AccountLoggingAddressView.as_view(),
        name="api-account-logging-address",
    ),
    path(
        "accounts/<int:account_id>/meetings/",
        meetings_api.AccountMeetingsView.as_view(),
        name="api-account-meetings",
    ),
    path(
        "accounts/<int:account_id>/follow/",
        feed_api.AccountFollowView.as_view(),
        name="api-account-follow",
    ),
    path(
        "accounts/<int:account_id>/mentions/",
        feed_api.MentionSuggestionsView.as_view(),
        name="api-account-mentions",
    ),
    path(
        "activities/<int:activity_id>/",
        feed_api.ActivityDetailView.as_view(),
        name="api-activity",
    ),
    path(
        "activities/<int:activity_id>/comments/",
        feed_api.ActivityCommentsView.as_view(),
        name="api-activity-comments",
    ),
    path(
        "activities/<int:activity_id>/revisions/",
        feed_api.ActivityRevisionsView.as_view(),
        name="api-activity-revisions",
    ),
    path(
        "activities/<int:activity_id>/reactions/<slug:kind>/",
        feed_api.ActivityReactionView.as_view(),
        name="api-activity-reaction",
    ),
    path(
        "activities/<int:activity_id>/follow/",
        feed_api.ActivityFollowView.as_view(),
        name="api-activity-follow",
    ),
    path(
        "accounts/<int:account_id>/merge/",
        feed_api.AccountMergeView.as_view(),
        name="api-account-merge",
    ),
    path(
        "activities/<int:activity_id>/move/",
        feed_api.ActivityMoveView.as_view(),
        name="api-activity-move",
    ),
    path(
        "leads/<int:lead_id>/convert/", feed_api.LeadConvertView.as_view(), name="api-lead-convert"
    ),
    path(
        "privacy/contacts/<int:contact_id>/export/",
        privacy_api.ContactExportView.as_view(),
        name="api-privacy-contact-export",
    ),
    path(
        "privacy/contacts/<int:contact_id>/erase/",
        privacy_api.ContactEraseView.as_view(),
        name="api-privacy-contact-erase",
    ),
    path(
        "privacy/leads/<int:lead_id>/export/",
        privacy_api.LeadExportView.as_view(),
        name="api-privacy-lead-export",
    ),
    path(
        "privacy/leads/<int:lead_id>/erase/",
        privacy_api.LeadEraseView.as_view(),
        name="api-privacy-lead-erase",
    ),
    path(
        "integrations/inbound-emails/<int:inbound_id>/",
        integrations_api.InboundEmailStatusView.as_view(),
        name="api-inbound-email",
    ),
    path("feed/", feed_api.HomeFeedView.as_view(), name="api-feed"),
    path("search/", feed_api.SearchView.as_view(), name="api-search"),
    path(
        "notifications/",
        notifications_api.NotificationListView.as_view(),
        name="api-notifications",
    ),
    path(
        "notifications/read/",
        notifications_api.NotificationReadView.as_view(),
        name="api-notifications-read",
    ),
    path(
        "notifications/preferences/",
        notifications_api.NotificationPreferencesView.as_view(),
        name="api-notification-preferences",
    ),
]

urlpatterns = [
    path("", feed_views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", crm_views.account_list, name="account-list"),
    path("accounts/<int:account_id>/", feed_views.account_detail, name="account-detail"),
    path("accounts/<int:account_id>/compose/", feed_views.compose, name="account-compose"),
    path("accounts/<int:account_id>/follow/", feed_views.follow, name="account-follow"),
    path(
        "activities/<int:activity_id>/history/",
        feed_views.activity_history,
        name="activity-history",
    ),
    path("activities/<int:activity_id>/item/", feed_views.activity_item, name="activity-item"),
    path("activities/<int:activity_id>/<slug:verb>/", feed_views.act, name="activity-act"),
    path("notifications/", notifications_views.inbox, name="notification-inbox"),
    path("notifications/read/", notifications_views.mark_all_read, name="notification-read-all"),
    path(
        "notifications/<int:notification_id>/open/",
        notifications_views.open_notification,
        name="notification-open",
    ),
    path(
        "notifications/settings/",
        notifications_views.notification_settings,
        name="notification-settings",
    ),
    path(
        "notifications/unsubscribe/<str:token>/",
        notifications_views.unsubscribe,
        name="notification-unsubscribe",
    ),
    path("integrations/email/inbound/raw/", email_views.inbound_raw, name="email-inbound-raw"),
    path("integrations/email/inbound/mailgun/", mailgun_views.inbound, name="email-mailgun"),
    path(
        "integrations/email/inbound/postmark/",
        postmark_views.inbound,
        name="email-postmark",
    ),
    path(
        "integrations/email/inbound/sendgrid/",
        sendgrid_views.inbound,
        name="email-sendgrid",
    ),
    path(
        "integrations/email/inbound/amazon-ses/",
        amazon_ses_views.inbound,
        name="email-amazon-ses",
    ),
    path("integrations/email/triage/", email_views.triage, name="email-triage"),
    path(
        "integrations/email/triage/rematch/",
        email_views.triage_rematch,
        name="email-triage-rematch",
    ),
    path(
        "integrations/email/triage/<int:inbound_id>/assign/",
        email_views.triage_assign,
        name="email-triage-assign",
    ),
    path(
        "integrations/email/triage/<int:inbound_id>/rerun/",
        email_views.triage_rerun,
        name="email-triage-rerun",
    ),
    path(
        "integrations/email/attachments/<int:attachment_id>/",
        email_views.attachment_download,
        name="email-attachment",
    ),
    path("requests/", support_views.queue, name="request-list"),
    path("requests/<int:request_id>/", support_views.request_detail, name="request-detail"),
    path(
        "requests/<int:request_id>/<slug:verb>/",
        support_views.work_request,
        name="request-work",
    ),
    path("dashboard/", dashboard_views.dashboard, name="dashboard"),
    path("dashboard/panels/", dashboard_views.panels, name="dashboard-panels"),
    path("dashboard/<slug:panel>.csv", dashboard_views.export_csv, name="dashboard-export"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("healthz/", healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
