do $$
begin
  create table n as select * from o;
  drop table o cascade;
  execute format($f$drop table %I$f$, 1);
end $$;
