"""The image captioning lab (Show, Attend and Tell on Flickr8k or its offline stand-in)."""
