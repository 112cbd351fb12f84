"""The model-operations API: training runs, datasets, versions, promotion and rollback (admins),
and the active model's card (everyone signed in)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from webapp.api.permissions import IsAdminRole
from webapp.api.schema import ErrorSerializer
from webapp.modelops.cards import model_card
from webapp.modelops.judging import comparison
from webapp.modelops.selectors import (
    datasets_list,
    model_import_get,
    model_import_state,
    model_version_get,
    model_version_get_active,
    model_versions_list,
    training_run_get,
    training_run_state,
    training_runs_list,
)
from webapp.modelops.serializers import (
    DatasetSerializer,
    ModelImportSerializer,
    ReasonSerializer,
    TrainingRunRequestSerializer,
    TrainingRunStateSerializer,
)
from webapp.modelops.services.datasets import dataset_register
from webapp.modelops.services.imports import model_import_create
from webapp.modelops.services.registry import model_version_promote, model_version_rollback
from webapp.modelops.services.runs import training_run_cancel, training_run_create


def _version_json(version) -> dict:
    return {
        "name": version.name,
        "architecture": version.architecture,
        "status": version.status,
        "created_at": version.created_at.isoformat(),
        "activated_at": version.activated_at.isoformat() if version.activated_at else None,
        "parent": version.parent.name if version.parent else None,
        "created_by": version.created_by.username if version.created_by else None,
        "training_run": str(version.training_run.public_id) if version.training_run else None,
        "snapshot": version.snapshot.sha256 if version.snapshot else None,
        "sha256": version.sha256,
    }


class TrainingRunListCreateView(GenericAPIView):
    permission_classes = [IsAdminRole]
    serializer_class = TrainingRunStateSerializer

    @extend_schema(responses=TrainingRunStateSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(training_runs_list())
        return self.get_paginated_response([training_run_state(run) for run in page])

    @extend_schema(
        request=TrainingRunRequestSerializer, responses={201: TrainingRunStateSerializer}
    )
    def post(self, request):
        serializer = TrainingRunRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        run = training_run_create(
            requested_by=request.user,
            dataset=data["dataset"],
            preset=data["preset"],
            options={**data["options"], "architecture": data["architecture"]},
            include_confirmed_cases=data["include_confirmed_cases"],
        )
        return Response(training_run_state(run), status=status.HTTP_201_CREATED)


class TrainingRunDetailView(GenericAPIView):
    permission_classes = [IsAdminRole]
    serializer_class = TrainingRunStateSerializer

    def get(self, request, public_id):
        return Response(training_run_state(training_run_get(public_id=public_id)))


class TrainingRunCancelView(GenericAPIView):
    permission_classes = [IsAdminRole]
    serializer_class = TrainingRunStateSerializer

    @extend_schema(request=None, responses=TrainingRunStateSerializer)
    def post(self, request, public_id):
        run = training_run_cancel(
            run=training_run_get(public_id=public_id), requested_by=request.user
        )
        return Response(training_run_state(training_run_get(public_id=run.public_id)))


class DatasetListCreateView(GenericAPIView):
    permission_classes = [IsAdminRole]
    serializer_class = DatasetSerializer
    pagination_class = None

    @extend_schema(responses=DatasetSerializer(many=True))
    def get(self, request):
        return Response(
            [
                {"name": d.name, "location_kind": d.location_kind, "location": d.location}
                for d in datasets_list()
            ]
        )

    @extend_schema(request=DatasetSerializer, responses={201: DatasetSerializer})
    def post(self, request):
        serializer = DatasetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        dataset = dataset_register(created_by=request.user, **serializer.validated_data)
        return Response(
            {
                "name": dataset.name,
                "location_kind": dataset.location_kind,
                "location": dataset.location,
            },
            status=status.HTTP_201_CREATED,
        )


class ModelVersionListView(GenericAPIView):
    permission_classes = [IsAdminRole]

    @extend_schema(
        operation_id="models_list",
        responses=OpenApiResponse(description="registered model versions"),
    )
    def get(self, request):
        page = self.paginate_queryset(model_versions_list())
        return self.get_paginated_response([_version_json(v) for v in page])


class ModelVersionDetailView(GenericAPIView):
    permission_classes = [IsAdminRole]

    @extend_schema(responses=OpenApiResponse(description="the version beside the active model"))
    def get(self, request, name):
        version = model_version_get(name=name)
        cmp = comparison(version)
        return Response(
            {
                **_version_json(version),
                "active_model": cmp["active"].name if cmp["active"] else None,
                # Photos from other sources first, when registered; then the held-out split.
                "evaluations": [
                    {
                        **_set_json(side["evaluation_set"]),
                        "candidate": side["candidate"]["summary"],
                        "active": side["active"]["summary"],
                        "referral": side["referral"],
                        "referral_tradeoff": (
                            side["candidate"]["evaluation"].metrics.get("referral_tradeoff")
                            if side["candidate"]["evaluation"]
                            else None
                        ),
                        "subgroups_flagged": (side["subgroups"] or {}).get("flagged"),
                        "per_class": [
                            {
                                "code": row["code"],
                                "candidate": row["candidate"],
                                "active": row["active"],
                            }
                            for row in side["per_class"]
                        ],
                    }
                    for side in cmp["sets"]
                ],
                "gate": cmp["gate"],
            }
        )


class ModelVersionPromoteView(GenericAPIView):
    permission_classes = [IsAdminRole]
    serializer_class = ReasonSerializer

    @extend_schema(responses=OpenApiResponse(description="the promotion record"))
    def post(self, request, name):
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = model_version_promote(
            version=model_version_get(name=name),
            actor=request.user,
            reason=serializer.validated_data["reason"],
        )
        return Response(_event_json(event))


class ModelRollbackView(GenericAPIView):
    permission_classes = [IsAdminRole]
    serializer_class = ReasonSerializer

    @extend_schema(responses=OpenApiResponse(description="the rollback record"))
    def post(self, request):
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = model_version_rollback(
            actor=request.user, reason=serializer.validated_data["reason"]
        )
        return Response(_event_json(event))


def _set_json(evaluation_set) -> dict:
    return {
        "evaluation_set": evaluation_set.sha256,
        "kind": evaluation_set.kind,
        "name": evaluation_set.name or None,
        "image_count": evaluation_set.image_count,
    }


def _external_json(external: dict | None) -> dict | None:
    """The card's numbers on photos from other sources (None: no such set is registered)."""
    if external is None:
        return None
    return {
        **_set_json(external["evaluation_set"]),
        "summary": external["summary"],
        "referral": external.get("referral"),
        "weak_classes": external.get("weak_classes", []),
    }


def _event_json(event) -> dict:
    return {
        "action": event.action,
        "version": event.version.name,
        "previous": event.previous.name if event.previous else None,
        "actor": event.actor.username if event.actor else None,
        "reason": event.reason,
        "gate": event.gate,
        "at": event.created_at.isoformat(),
    }


class ActiveModelView(GenericAPIView):
    """The active model's card, for everyone signed in."""

    @extend_schema(
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="the active model's card"),
            404: OpenApiResponse(ErrorSerializer, description="No model is active"),
        }
    )
    def get(self, request):
        version = model_version_get_active()
        if version is None:
            return Response({"detail": "No model is active."}, status=status.HTTP_404_NOT_FOUND)
        card = model_card(version)
        return Response(
            {
                "name": version.name,
                "architecture": version.architecture,
                "description": card["architecture_label"],
                "input_size": card["input_size"],
                "activated_at": version.activated_at.isoformat() if version.activated_at else None,
                "created_at": card["created_at"],
                "dataset": card["dataset"],
                "metrics_source": card["metrics_source"],
                "evaluation_set": card["evaluation_set"].sha256 if card["evaluation_set"] else None,
                "external": _external_json(card["external"]),
                "seen_in_training": card["seen_in_training"],
                "summary": card["summary"],
                "per_class": card["per_class"],
                "weak_classes": card["weak_classes"],
            }
        )


class ModelImportCreateView(GenericAPIView):
    """Upload a bundle, a Keras file or a JSON + H5 pair; the training worker checks and registers it."""

    permission_classes = [IsAdminRole]
    parser_classes = [MultiPartParser]
    serializer_class = ModelImportSerializer

    @extend_schema(responses={201: OpenApiResponse(description="the import's state")})
    def post(self, request):
        serializer = ModelImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        record = model_import_create(
            requested_by=request.user,
            kind=data["kind"],
            files={role: data.get(role) for role in ("bundle", "model", "json", "weights")},
            architecture=data["architecture"],
            input_scale=data["input_scale"],
            name=data["name"],
        )
        return Response(model_import_state(record), status=status.HTTP_201_CREATED)


class ModelImportDetailView(GenericAPIView):
    permission_classes = [IsAdminRole]

    @extend_schema(responses=OpenApiResponse(description="the import's state"))
    def get(self, request, public_id):
        return Response(model_import_state(model_import_get(public_id=public_id)))
