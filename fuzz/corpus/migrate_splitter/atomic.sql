create function add(a int) returns int language sql begin atomic select a + 1; select case when a > 0 then 1 end; end;
select 2;