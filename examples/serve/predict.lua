-- wrk: POST the ETA row of examples/serve/predict.json to /v1/models/eta/predict.
local file = io.open("examples/serve/predict.json", "r")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = file:read("*a")
file:close()
