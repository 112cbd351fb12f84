from django.contrib.auth import login
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from webapp.accounts.forms import SignUpForm
from webapp.accounts.services import user_create


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("cases:history")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # Self sign-up always creates a patient; roles are granted by admins only.
        user = user_create(
            username=form.cleaned_data["username"],
            email=form.cleaned_data.get("email", ""),
            password=form.cleaned_data["password1"],
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("cases:upload")
    return render(request, "accounts/signup.html", {"form": form})
