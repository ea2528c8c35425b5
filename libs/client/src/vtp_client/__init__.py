"""Python client of the vision training platform: `Client(url, token)`, typed models, `ApiError`."""

from vtp_client.batches import Batch
from vtp_client.client import Client, Health
from vtp_client.config import Settings, config_path, load_config, resolve, save_config
from vtp_client.datasets import Dataset, Snapshot, Split
from vtp_client.deployments import Deployment, Detection, ImageResult, Prediction
from vtp_client.errors import ApiError, ConnectionFailed, FeedError, Problem, VtpError
from vtp_client.exports import Export
from vtp_client.feed import FeedEvent
from vtp_client.hooks import Delivery, Subscription, SubscriptionCreated
from vtp_client.jobs import Job, JobLogs, JobMetrics, Trainer
from vtp_client.keys import ApiKey, ApiKeyCreated, Limits
from vtp_client.projects import IssuedToken, Project, Token, WhoAmI
from vtp_client.transport import Progress, RetryPolicy
from vtp_client.usage import Usage, UsageFigures

__all__ = [
    "ApiError",
    "ApiKey",
    "ApiKeyCreated",
    "Batch",
    "Client",
    "ConnectionFailed",
    "Dataset",
    "Delivery",
    "Deployment",
    "Detection",
    "Export",
    "FeedError",
    "FeedEvent",
    "Health",
    "ImageResult",
    "IssuedToken",
    "Job",
    "JobLogs",
    "JobMetrics",
    "Limits",
    "Prediction",
    "Problem",
    "Progress",
    "Project",
    "RetryPolicy",
    "Settings",
    "Snapshot",
    "Split",
    "Subscription",
    "SubscriptionCreated",
    "Token",
    "Trainer",
    "Usage",
    "UsageFigures",
    "VtpError",
    "WhoAmI",
    "config_path",
    "load_config",
    "resolve",
    "save_config",
]
