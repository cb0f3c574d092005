"""The speech synthesis lab: Tacotron2 + WaveGlow / Griffin-Lim in plain torch, NVIDIA's checkpoints."""
