-- One database per service that owns state (run once, when the postgres volume is first created).
CREATE DATABASE vtp_identity;
CREATE DATABASE vtp_jobs;
CREATE DATABASE vtp_datasets;
CREATE DATABASE vtp_export;
CREATE DATABASE vtp_inference;
CREATE DATABASE vtp_notifier;
