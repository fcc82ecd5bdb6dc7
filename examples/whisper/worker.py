"""Speech to text with faster-whisper."""

from vastai.serverless.remote import Deployment

app = Deployment(name="whisper-stt")


@app.remote
async def transcribe(audio_url: str, language: str = "en") -> str:
    from faster_whisper import WhisperModel

    model = WhisperModel("small", device="cuda")
    segments, _ = model.transcribe(audio_url, language=language)
    return " ".join(segment.text for segment in segments)
