do $t$ begin raise notice 'a;b'; end $t$; select E'it\'s', "q;""x" from t; -- c;
/* a /* b; */ */ select 1;