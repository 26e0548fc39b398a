-- Expand: the dashboard lists queued runs; index them without blocking writes.
create index concurrently if not exists runs_status_created_idx
  on public.runs (status, created_at);
