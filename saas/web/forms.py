"""Every form of the web UI: fields, limits and the messages shown beside them."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
    URLField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    URL,
    DataRequired,
    Email,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from saas import passwords, timezones
from tenants.models import Role

EMAIL_MAX = 254
NAME_MAX = 120


def _email_field(label: str = "Email") -> EmailField:
    return EmailField(
        label,
        validators=[
            InputRequired("Enter your email address."),
            Length(max=EMAIL_MAX, message=f"Use at most {EMAIL_MAX} characters."),
            Email("Enter an email address like name@example.com.", check_deliverability=False),
        ],
        filters=[lambda v: v.strip().lower() if isinstance(v, str) else v],
        render_kw={"autocomplete": "email", "maxlength": EMAIL_MAX},
    )


def _name_field(label: str, message: str) -> StringField:
    return StringField(
        label,
        validators=[
            DataRequired(message),  # checks after stripping: "   " counts as empty
            Length(max=NAME_MAX, message=f"Use at most {NAME_MAX} characters."),
        ],
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
        render_kw={"maxlength": NAME_MAX},
    )


def _new_password_field(label: str = "Password") -> PasswordField:
    return PasswordField(
        label,
        validators=[InputRequired("Choose a password.")],
        description=f"At least {passwords.MIN_LENGTH} characters. Avoid common passwords.",
        render_kw={"autocomplete": "new-password", "minlength": passwords.MIN_LENGTH},
    )


def _repeat_password_field() -> PasswordField:
    return PasswordField(
        "Repeat new password",
        validators=[InputRequired("Repeat the new password."), EqualTo("password", "The two passwords differ.")],
        render_kw={"autocomplete": "new-password"},
    )


def _timezone_field(label: str = "Time zone") -> SelectField:
    return SelectField(
        label,
        choices=[],  # filled lazily: the list is long and read from the zone database
        validators=[InputRequired("Choose a time zone.")],
        validate_choice=False,
        default="UTC",
    )


class _TimezoneForm(FlaskForm):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.timezone.choices = list(timezones.timezones())  # type: ignore[attr-defined]

    def validate_timezone(self, field: SelectField) -> None:
        if not timezones.is_timezone(field.data or ""):
            raise ValidationError("Choose a time zone from the list, like Europe/London.")


class SignupForm(_TimezoneForm):
    name = _name_field("Your name", "Enter your name.")
    email = _email_field()
    business_name = _name_field("Business name", "Enter the name of your business.")
    password = _new_password_field()
    timezone = _timezone_field()


class LoginForm(FlaskForm):
    email = _email_field()
    password = PasswordField(
        "Password",
        validators=[InputRequired("Enter your password.")],
        render_kw={"autocomplete": "current-password"},
    )
    remember = BooleanField("Keep me logged in")  # the page names how long (REMEMBER_ME_LIFETIME)


def _second_factor_field() -> StringField:
    return StringField(
        "Code",
        validators=[Length(max=40, message="That is longer than any code we issue.")],
        filters=[lambda v: v.strip() if isinstance(v, str) else v],
        description="The 6-digit code from your authenticator app, or one of your recovery codes.",
        render_kw={"autocomplete": "one-time-code", "maxlength": 40, "autocapitalize": "none", "spellcheck": "false"},
    )


class TwoFactorForm(FlaskForm):
    code = _second_factor_field()


class ReauthForm(FlaskForm):
    password = PasswordField(
        "Password",
        validators=[InputRequired("Enter your password.")],
        render_kw={"autocomplete": "current-password"},
    )
    code = _second_factor_field()


class ChangeEmailForm(FlaskForm):
    email = _email_field("New email address")


class ResetRequestForm(FlaskForm):
    email = _email_field()


class ResetPasswordForm(FlaskForm):
    password = _new_password_field("New password")
    confirm = _repeat_password_field()


class ProfileForm(_TimezoneForm):
    name = _name_field("Name", "Enter your name.")
    timezone = _timezone_field()


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        "Current password",
        validators=[InputRequired("Enter your current password.")],
        render_kw={"autocomplete": "current-password"},
    )
    password = _new_password_field("New password")
    confirm = _repeat_password_field()


ROLE_CHOICES = [
    SelectChoice(Role.ADMIN.value, "Admin — manages the team and settings"),
    SelectChoice(Role.EDITOR.value, "Editor — writes and schedules posts"),
    SelectChoice(Role.REVIEWER.value, "Reviewer — approves posts, free seat"),
    SelectChoice(Role.VIEWER.value, "Viewer — reads only"),
    SelectChoice(Role.OWNER.value, "Owner — everything, including billing"),
]


class InviteForm(FlaskForm):
    email = _email_field("Email address")
    role = SelectField("Role", choices=ROLE_CHOICES, default=Role.EDITOR.value)


class ReviewerForm(FlaskForm):
    name = _name_field("Their name", "Enter the reviewer's name.")
    email = _email_field("Their email address")


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)


class AcceptInvitationForm(FlaskForm):
    name = _name_field("Your name", "Enter your name.")
    password = _new_password_field()


class WorkspaceSettingsForm(_TimezoneForm):
    name = _name_field("Workspace name", "Enter a name for the workspace.")
    timezone = _timezone_field("Workspace time zone")
    require_two_factor = BooleanField(
        "Require two-factor authentication",
        description="Members without it are asked to set it up before they can open this workspace.",
    )


class ConfirmForm(FlaskForm):
    """A button that POSTs: carries only the CSRF token."""


class ComposeForm(FlaskForm):
    text = TextAreaField(
        "Text",
        validators=[Optional()],  # a draft may be empty; scheduling checks it (saas.posts.service)
        render_kw={"rows": 6, "data-counter": "true"},
    )
    channels = SelectMultipleField(
        "Channels",
        coerce=int,
        validators=[Optional()],  # a draft may have none; scheduling checks it (saas.posts.service)
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        validate_choice=False,  # checked against the workspace's channels by the service
    )
    publish_now = BooleanField("Publish now")
    date = DateField("Date", validators=[Optional()])
    time = TimeField("Time", validators=[Optional()])
    # Which of a twice-happening hour (clocks going back); empty until the person is asked.
    fold = HiddenField()
    thread = TextAreaField(
        "Thread",
        description="Follow-up posts, for networks that take threads. Separate the posts with a line of ---.",
        render_kw={"rows": 3},
    )
    first_comment = TextAreaField("First comment", validators=[Length(max=10_000)], render_kw={"rows": 2})
    tags = StringField(
        "Tags", description="Separated by commas, to filter the calendar by.", validators=[Length(max=1000)]
    )
    notes = TextAreaField(
        "Internal notes",
        description="Only your team sees these; they are never published.",
        validators=[Length(max=10_000)],
        render_kw={"rows": 2},
    )

    repeat = SelectField(
        "Repeat",
        choices=[
            SelectChoice("", "Does not repeat"),
            SelectChoice("daily", "Every N days"),
            SelectChoice("weekly", "Every N weeks"),
            SelectChoice("monthly", "Every N months"),
        ],
        validate_choice=False,  # checked by saas.posts.recurrence.Rule, with its own message
    )
    repeat_every = IntegerField("Every", default=1, validators=[Optional(), NumberRange(1, 365, "Use 1 to 365.")])
    repeat_weekdays = SelectMultipleField(
        "On",
        coerce=int,
        choices=[SelectChoice(i, day) for i, day in enumerate(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        validators=[Optional()],
    )
    repeat_count = IntegerField("End after (times)", validators=[Optional(), NumberRange(1, 1000, "Use 1 to 1000.")])
    repeat_until = DateField("Or end on", validators=[Optional()])


class WebhookEndpointForm(FlaskForm):
    """An endpoint's address, description and events; saas.webhooks.service checks them (and says why)."""

    url = StringField(
        "Endpoint URL",
        description="Where we POST the events, like https://example.com/webhooks/multipost.",
        render_kw={"maxlength": 2000, "autocomplete": "url", "inputmode": "url"},
    )
    description = StringField("Description (optional)", render_kw={"maxlength": 200})
    events = SelectMultipleField(
        "Events",
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        validate_choice=False,  # an unknown event gets the service's message, which names the known ones
    )


class MoveForm(FlaskForm):
    date = DateField("Date", validators=[InputRequired("Choose a date.")])
    time = TimeField("Time", validators=[InputRequired("Choose a time.")])
    fold = SelectField(
        "Which one (the hour happens twice)",
        choices=[SelectChoice("", "—"), SelectChoice("0", "The first"), SelectChoice("1", "The second")],
        validate_choice=False,  # anything else means "not said": the service asks again
    )


class MarkPublishedForm(FlaskForm):
    url = URLField(
        "Link to the live post (optional)",
        validators=[
            Optional(),
            Length(max=1000, message="Use at most 1000 characters."),
            URL(message="Enter a full link."),
        ],
    )


def _address_field(label: str, missing: str, description: str = "", **render_kw: str) -> StringField:
    """A required one-line field of at most 255 characters: a server address or a handle."""
    return StringField(
        label,
        validators=[InputRequired(missing), Length(max=255, message="Use at most 255 characters.")],
        description=description,
        render_kw={"maxlength": 255, **render_kw},
    )


class MastodonConnectForm(FlaskForm):
    instance = _address_field(
        "Your Mastodon server",
        "Enter your server's address.",
        "The address after the second @ in your handle, like mastodon.social.",
        placeholder="mastodon.social",
        autocomplete="url",
    )


class BlueskyConnectForm(FlaskForm):
    identifier = _address_field(
        "Handle or DID", "Enter your Bluesky handle.", placeholder="yourname.bsky.social", autocomplete="username"
    )
    app_password = PasswordField(
        "App password",
        validators=[InputRequired("Enter an app password."), Length(max=64, message="Use at most 64 characters.")],
        description="Create one in Bluesky under Settings → Privacy and security → App passwords. "
        "Never your main password. We keep only the session it opens, not the password.",
        render_kw={"autocomplete": "off"},
    )
    pds_url = _address_field(
        "Server (PDS)", "Enter the server's address.", "Leave as it is unless you host your own Bluesky server."
    )


class RescheduleForm(FlaskForm):
    """A new time for a post that was held back, in the workspace's time zone."""

    date = DateField("Date", validators=[DataRequired()])
    time = TimeField("Time", validators=[DataRequired()])
