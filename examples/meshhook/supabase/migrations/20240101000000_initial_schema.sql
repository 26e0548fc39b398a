-- MeshHook's core tables: workflows, the webhooks that trigger them, and runs.
create table public.workflows (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  definition jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now()
);

create table public.webhooks (
  id uuid primary key default gen_random_uuid(),
  workflow_id uuid not null references public.workflows (id) on delete cascade,
  path text not null unique,
  created_at timestamptz not null default now()
);

create table public.runs (
  id bigint generated always as identity primary key,
  workflow_id uuid not null references public.workflows (id) on delete cascade,
  status text not null default 'queued',
  legacy_payload text,
  payload jsonb,
  created_at timestamptz not null default now(),
  finished_at timestamptz
);

create index runs_workflow_id_idx on public.runs (workflow_id);
