"""A small deployment written with the vastai SDK, as users write them before moving
to a Vastfile: `vastbuild import examples/sdk/deployment.py -o -` prints its Vastfile."""

from vastai import Deployment
from vastai.data.query import RTX_4090, RTX_5090, gpu_name, gpu_ram

app = Deployment(name="sdk-echo", tag="default")
image = (app.image("vastai/pytorch:@vastai-automatic-tag", 40)
         .pip_install("fastapi", "uvicorn")
         .env(LOG_LEVEL="info")
         .publish_port(8000, "tcp")
         .require(gpu_ram >= 16, gpu_name.in_([RTX_4090, RTX_5090])))
app.configure_autoscaling(cold_workers=0, max_workers=2)


@app.remote
async def echo(text: str) -> str:
    return text
