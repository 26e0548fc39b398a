create function f() returns void language plpgsql as $$
begin
  truncate t;
  perform f();
end $$;
select f();
