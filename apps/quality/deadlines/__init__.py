"""Deadlines (R-6.2.b–d, R-9.1.4): the working-day calendar, due dates, the overdue list and reminders.

``calendar``: is a day a working day (chinese-calendar, overridden by ``WorkdayOverride``); ``due``: when data of
a period is due, per kind (daily, monthly, stage, manual); ``selectors``: what is overdue now; ``services``:
reminders and escalations."""
