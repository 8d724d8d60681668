import json,sys
for f in sys.argv[1:]:
    r=json.load(open(f))
    for key in ("speed","synthetic_7b"):
        for row in r.get(key,[]):
            if "error" in row: print(row); continue
            d={x["batch"]:x for x in row["decode"]}
            def j(v): return "-" if v is None else "%.3f"%v
            b16 = ("b16 %6.0f tok/s %s J"%(d[16]["tokens_per_s"],j(d[16]["j_per_token"]))) if 16 in d else ""
            print("%-12s %-40s pf %6.0f | b1 %6.1f (dec %6.1f) tok/s %s J | %s"%(row["model"].replace("synthetic ","")[:12],row["scheme"],row["prefill"]["tokens_per_s"],d[1]["tokens_per_s"],d[1].get("decode_only_tokens_per_s",0),j(d[1]["j_per_token"]),b16))
