-- meshdeploy:phase contract
-- Contract: payloads moved to runs.payload (jsonb) two releases ago; no
-- running release reads legacy_payload any more, so it can go once the old
-- release has stopped.
-- meshdeploy:allow ban-drop-column no release since v1.4 reads legacy_payload
alter table public.runs drop column legacy_payload;
