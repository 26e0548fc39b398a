alter table w add column c int check (c > 0), add constraint fk foreign key (a) references p(id) not valid;
drop view v;
create or replace view v as select 1;
