"""Text to image with a diffusion pipeline."""

import base64
import io

from vastai.serverless.remote import Deployment

app = Deployment(name="sdxl-images")


@app.remote
async def render(prompt: str, steps: int = 30) -> str:
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained("stabilityai/sdxl-turbo")
    image = pipe(prompt, num_inference_steps=steps).images[0]
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()
