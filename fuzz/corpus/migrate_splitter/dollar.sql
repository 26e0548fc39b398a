create or replace function f() returns trigger language plpgsql as $$
begin new.x := 1; return new; end;
$$;
