alter table public.workflows add column retries int not null default 0;
create index concurrently if not exists wr_idx on workflow_runs (workflow_id);
create policy owner_rw on workflows for all to authenticated using (owner = auth.uid());