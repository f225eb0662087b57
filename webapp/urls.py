from django.urls import include, path

from webapp import views, views_drills, views_lessons, views_timeline

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("", include("webapp.workshops.urls")),
    path("sandbox/", views.sandbox_mine, name="sandbox-mine"),
    # lessons (webapp/views_lessons.py)
    path("lessons/", views_lessons.lessons_catalogue, name="lessons"),
    path("lessons/glossary/", views_lessons.lessons_glossary, name="glossary"),
    path("lessons/<slug:lesson_id>/", views_lessons.lesson_page, name="lesson-page"),
    path("lessons/<slug:lesson_id>/step/", views_lessons.lesson_step, name="lesson-step"),
    path("lessons/<slug:lesson_id>/answer/", views_lessons.lesson_answer, name="lesson-answer"),
    path("lessons/<slug:lesson_id>/restart/", views_lessons.lesson_restart, name="lesson-restart"),
    path("sandbox/new/", views.sandbox_new, name="sandbox-new"),
    path("sandbox/<str:cluster_id>/", views.sandbox_detail, name="sandbox-detail"),
    path("sandbox/<str:cluster_id>/produce/", views.sandbox_produce, name="sandbox-produce"),
    path("sandbox/<str:cluster_id>/kafka/", views.sandbox_kafka, name="sandbox-kafka"),
    path("sandbox/<str:cluster_id>/console/", views.sandbox_console, name="sandbox-console"),
    # time travel, share links and "Stress it" (webapp/views_timeline.py)
    path(
        "sandbox/<str:cluster_id>/timeline/",
        views_timeline.sandbox_timeline,
        name="sandbox-timeline",
    ),
    path("sandbox/<str:cluster_id>/fork/", views_timeline.sandbox_fork, name="sandbox-fork"),
    path("sandbox/<str:cluster_id>/share/", views_timeline.sandbox_share, name="sandbox-share"),
    path("sandbox/<str:cluster_id>/stress/", views_timeline.sandbox_stress, name="sandbox-stress"),
    path(
        "sandbox/<str:cluster_id>/stress/runs/",
        views_timeline.sandbox_stress_runs,
        name="sandbox-stress-runs",
    ),
    path("stress/<str:run_id>/open/<int:index>/", views_timeline.stress_open, name="stress-open"),
    path("s/<str:token>/", views_timeline.share_open, name="share-open"),
    path("shared/<str:shared_id>/", views_timeline.shared_open, name="shared-open"),
    # drills, quizzes, mock interviews, spaced review, progress (webapp/views_drills.py)
    path("drills/", views_drills.drills_index, name="drills-index"),
    path("drills/quiz/", views_drills.quiz_new, name="quiz-new"),
    path("drills/quiz/<uuid:round_id>/", views_drills.quiz_item, name="quiz-item"),
    path("drills/quiz/<uuid:round_id>/finish/", views_drills.quiz_finish, name="quiz-finish"),
    path("drills/quiz/<uuid:round_id>/results/", views_drills.quiz_results, name="quiz-results"),
    path("drills/review/", views_drills.review, name="drills-review"),
    path("drills/<slug:drill_id>/", views_drills.drill_practice, name="drill-practice"),
    path(
        "drills/<slug:drill_id>/attempt/<int:attempt_id>/",
        views_drills.drill_attempt,
        name="drill-attempt",
    ),
    path("drills/<slug:drill_id>/run/", views_drills.drill_run, name="drill-run"),
    path("drills/<slug:drill_id>/sandbox/", views_drills.drill_sandbox, name="drill-sandbox"),
    path("drills/<slug:drill_id>/build/", views_drills.design_build, name="drill-build"),
    path("progress/", views_drills.progress_page, name="progress"),
    path("progress/export/", views_drills.progress_export, name="progress-export"),
    path("accounts/", include("webapp.accounts.urls")),
]
