from django.views.generic import TemplateView


class HomeView(TemplateView):
    template_name = "pages/home.html"


class AboutView(TemplateView):
    template_name = "pages/about.html"

    def get_context_data(self, **kwargs):
        from ml.classes import CLASS_NAMES

        context = super().get_context_data(**kwargs)
        context["classes"] = CLASS_NAMES.items()
        return context


class ContactView(TemplateView):
    template_name = "pages/contact.html"
