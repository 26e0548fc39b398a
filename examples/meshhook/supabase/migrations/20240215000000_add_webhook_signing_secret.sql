-- Expand: webhooks may carry a signing secret. Nullable, no default rewrite:
-- the running release ignores the column, the new one fills it.
alter table public.webhooks add column signing_secret_id text;
